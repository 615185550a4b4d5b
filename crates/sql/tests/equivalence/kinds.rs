//! The tables the tests create, by kind: a key (one column, or `(a, b)`
//! with `b` nullable), a value `v` and a hit counter `n`.

use crate::backend::Backend;
use crate::twins::Twins;
use sqlx::Pool;

/// A table kind: its DDL (after `setup`, if any), key and read list.
pub struct Kind {
    pub prefix: &'static str,
    pub setup: Option<&'static str>,
    pub columns: &'static str,
    pub key: &'static [&'static str],
    pub select: &'static str,
}

impl Kind {
    /// Twin tables of this kind.
    pub async fn create<DB: Backend>(&self, pool: &Pool<DB>) -> Twins<DB> {
        if let Some(setup) = self.setup {
            crate::setup(pool, setup).await;
        }
        Twins::create(
            pool,
            self.prefix,
            self.columns,
            self.key,
            &["v"],
            self.select,
        )
        .await
    }
}

macro_rules! kind {
    ($prefix:literal, $key:literal) => {
        kind!($prefix, None, $key)
    };
    ($prefix:literal, $setup:expr, $key:literal) => {
        Kind {
            prefix: $prefix,
            setup: $setup,
            columns: concat!(
                $key,
                " PRIMARY KEY, v VARCHAR(16) NOT NULL, n BIGINT NOT NULL DEFAULT 0"
            ),
            key: &["k"],
            select: "k, v, n",
        }
    };
}

pub const PG_CITEXT: Kind = kind!("eq_citext", Some(crate::CITEXT), "k CITEXT");
pub const PG_CHAR: Kind = kind!("eq_char", "k CHAR(8)");
pub const PG_ICU_CI_AI: Kind = kind!(
    "eq_icu",
    Some(crate::ICU_CI_AI),
    "k TEXT COLLATE coalesce_ci_ai"
);
pub const PG_TEXT: Kind = kind!("eq_text", "k TEXT");
pub const MY_CI: Kind = kind!(
    "eq_ci",
    "k VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
);
/// The Unicode collation: case- and accent-insensitive, PAD SPACE.
pub const MY_UNICODE_CI: Kind = kind!(
    "eq_uca",
    "k VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci"
);
/// MariaDB's newer Unicode collation (the server default from 11.5), NO
/// PAD: case- and accent-insensitive, `ß` = `ss`, but `'a' <> 'a '`.
pub const MY_UCA1400_NOPAD: Kind = kind!(
    "eq_uca14",
    "k VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_nopad_ai_ci"
);
pub const MY_BIN: Kind = kind!(
    "eq_bin",
    "k VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
);
pub const MY_NOPAD: Kind = kind!(
    "eq_nopad",
    "k VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"
);
pub const LITE_NOCASE: Kind = kind!("eq_nocase", "k TEXT COLLATE NOCASE");
/// Trailing spaces ignored, case kept.
pub const LITE_RTRIM: Kind = kind!("eq_rtrim", "k TEXT COLLATE RTRIM");
pub const LITE_TEXT: Kind = kind!("eq_text", "k TEXT");
pub const PAIRS: Kind = Kind {
    prefix: "eq_pair",
    setup: None,
    columns: concat!(
        "a BIGINT NOT NULL, b VARCHAR(8) NULL, ",
        "v VARCHAR(16) NOT NULL, n BIGINT NOT NULL DEFAULT 0, UNIQUE (a, b)"
    ),
    key: &["a", "b"],
    select: "a, b, v, n",
};
pub const INT_KEY: Kind = kind!("eq_int", "k INT");
pub const BIGINT_KEY: Kind = kind!("eq_bigint", "k BIGINT");
