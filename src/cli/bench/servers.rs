//! The bench on a primary and its read replicas (`--replica-url`): where
//! the store's routed statements went, printed after the tables.

use coalesce_store::db::ServerStats;
use std::fmt::Write as _;

/// A table of statements per server: the store's batched reads and writes
/// and the position checks behind read-your-writes (the store's other
/// statements go to the primary and are not in it), with the replicas'
/// URLs (`replica_urls`, redacted) named below it.
///
/// ```ignore
/// statements per server (batched reads and writes, position checks):
/// | server    | reads | writes | statements | of which positions | fallback reads | failures |
/// ```
pub fn statements_per_server(stats: &[ServerStats], replica_urls: &[String]) -> String {
    let mut table = String::from(
        "\nstatements per server (batched reads and writes, position checks):\n\
         | server | reads | writes | statements | of which positions | fallback reads | failures |\n\
         |---|--:|--:|--:|--:|--:|--:|\n",
    );
    for server in stats {
        // Writing to a String cannot fail.
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} |",
            server.server,
            server.reads,
            server.writes,
            server.statements(),
            server.position_statements,
            server.fallback_reads,
            server.failures,
        );
    }
    for (index, url) in replica_urls.iter().enumerate() {
        let _ = writeln!(table, "replica {index}: {url}");
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalesce_store::db::ServerName;

    #[test]
    fn each_server_is_a_row_and_replicas_are_named() {
        let stats = [
            ServerStats {
                server: ServerName::Primary,
                reads: 1,
                writes: 2,
                batch_statements: 3,
                position_statements: 2,
                fallback_reads: 1,
                failures: 0,
                last_out_of_use: None,
            },
            ServerStats {
                server: ServerName::Replica(0),
                reads: 9,
                writes: 0,
                batch_statements: 9,
                position_statements: 4,
                fallback_reads: 0,
                failures: 1,
                last_out_of_use: None,
            },
        ];
        let table = statements_per_server(&stats, &["postgres://r:5433/test".to_owned()]);
        assert!(
            table.contains("| primary | 1 | 2 | 5 | 2 | 1 | 0 |"),
            "{table}"
        );
        assert!(
            table.contains("| replica 0 | 9 | 0 | 13 | 4 | 0 | 1 |"),
            "{table}"
        );
        assert!(
            table.ends_with("replica 0: postgres://r:5433/test\n"),
            "{table}"
        );
    }
}
