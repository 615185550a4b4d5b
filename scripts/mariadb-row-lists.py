#!/usr/bin/env python3
"""Time composite-key list forms on MariaDB/MySQL: one leading value, N keys.

Server-side prepared statements with binds (PREPARE ... EXECUTE USING), as
sqlx sends them, through the `mysql` client; times are the server's own
(SHOW PROFILES), median of 3 executions, in milliseconds. The table is the
memory store's shape: `(user_id, key)` is looked up while another index,
`(user_id, category, key)`, also begins with `user_id`, which is what makes
MariaDB's range optimizer quadratic in a row-value list's length.

    python3 scripts/mariadb-row-lists.py [--mysql "mysql -h127.0.0.1 -uroot"] [N ...]

Creates the database `row_lists_bench`, and drops it at the end.
"""

import argparse
import json
import shlex
import statistics
import subprocess

DB = "row_lists_bench"
CAP = 64  # the toolkit's row values per MySQL `IN` list

SETUP = f"""
DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}; USE {DB};
CREATE TABLE memories (
  id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id VARCHAR(191) NOT NULL,
  category VARCHAR(16) NOT NULL, `key` VARCHAR(255) NOT NULL, value MEDIUMTEXT NOT NULL,
  UNIQUE KEY user_category_key (user_id, category, `key`), KEY user_key (user_id, `key`)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
INSERT INTO memories (user_id, category, `key`, value)
  SELECT 'u1', 'FACT', CONCAT('k', seq), 'v' FROM seq_0_to_39999;
INSERT INTO memories (user_id, category, `key`, value)
  SELECT CONCAT('o', seq DIV 100), 'FACT', CONCAT('k', seq MOD 100), 'v' FROM seq_0_to_49999;
ANALYZE TABLE memories;
"""

COLUMNS = "SELECT id FROM memories"


def rows(keys):
    """Today's uncapped form: (user_id, key) IN ((?, ?), ...)."""
    sql = f"{COLUMNS} WHERE (user_id, `key`) IN ({', '.join(['(?, ?)'] * len(keys))})"
    return [(sql, [v for k in keys for v in ("u1", k)])]


def capped(keys):
    """The same form, CAP keys a statement."""
    return [stmt for i in range(0, len(keys), CAP) for stmt in rows(keys[i : i + CAP])]


def grouped(keys):
    """The leading column once: user_id = ? AND key IN (?, ...)."""
    sql = f"{COLUMNS} WHERE user_id = ? AND `key` IN ({', '.join(['?'] * len(keys))})"
    return [(sql, ["u1", *keys])]


def json_table(keys):
    """One JSON parameter joined through JSON_TABLE."""
    sql = (
        "SELECT m.id FROM JSON_TABLE(?, '$[*]' COLUMNS (u VARCHAR(191) PATH '$[0]', "
        "k VARCHAR(255) PATH '$[1]')) j JOIN memories m ON m.user_id = j.u AND m.`key` = j.k"
    )
    return [(sql, [json.dumps([["u1", k] for k in keys])])]


def union_join(keys):
    """A derived table of SELECT ?, ? UNION ALL ..., joined on the key."""
    select = " UNION ALL SELECT ?, ?" * (len(keys) - 1)
    sql = (
        f"SELECT m.id FROM memories m JOIN (SELECT ? AS u, ? AS k{select}) j "
        "ON m.user_id = j.u AND m.`key` = j.k"
    )
    return [(sql, [v for k in keys for v in ("u1", k)])]


FORMS = [rows, capped, grouped, json_table, union_join]


def quote(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def script(statements):
    """SQL running each statement 3 times, then SHOW PROFILES."""
    out = ["SET profiling = 1, profiling_history_size = 100;"]
    for i, (sql, binds) in enumerate(statements):
        out.extend(f"SET @v{j} = {quote(v)};" for j, v in enumerate(binds))
        out.append(f"SET @sql{i} = {quote(sql)}; PREPARE s{i} FROM @sql{i};")
    for _ in range(3):
        for i, (_, binds) in enumerate(statements):
            names = ", ".join(f"@v{j}" for j in range(len(binds)))
            out.append(f"EXECUTE s{i} USING {names};")
    out.append("SHOW PROFILES;")
    return "\n".join(out)


def run(client, sql):
    done = subprocess.run(client, input=sql, capture_output=True, text=True, check=True)
    return done.stdout


def median_ms(client, statements):
    """Server time of all statements together, median of 3 rounds."""
    out = run(client + [DB], script(statements))
    executes = [float(line.split("\t")[1]) for line in out.splitlines() if "\tEXECUTE " in line]
    per_round = len(statements)
    rounds = [sum(executes[i : i + per_round]) for i in range(0, len(executes), per_round)]
    return statistics.median(rounds) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mysql", default="mysql -h127.0.0.1 -uroot")
    parser.add_argument("n", nargs="*", type=int, default=[100, 256, 1000, 10000])
    args = parser.parse_args()
    client = shlex.split(args.mysql)
    run(client, SETUP)
    try:
        print("| keys | " + " | ".join(f.__name__ for f in FORMS) + " |")
        print("|-----:|" + "---:|" * len(FORMS))
        for n in args.n:
            keys = [f"k{i * 3}" for i in range(n)]  # a third of them exist
            cells = [f"{median_ms(client, form(keys)):.1f}" for form in FORMS]
            print(f"| {n} | " + " | ".join(cells) + " |", flush=True)
    finally:
        run(client, f"DROP DATABASE {DB};")


if __name__ == "__main__":
    main()
