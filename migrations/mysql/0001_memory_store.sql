-- The memory store: memories, profiles and onboarding data (MySQL/MariaDB).
-- utf8mb4_nopad_bin: keys compare byte for byte, case and trailing spaces
-- included, as on PostgreSQL and SQLite. VARCHAR lengths keep the unique
-- index within InnoDB's 3072-byte key limit at 4 bytes a character.
CREATE TABLE IF NOT EXISTS memories (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id VARCHAR(191) COLLATE utf8mb4_nopad_bin NOT NULL CHECK (user_id <> ''),
    category VARCHAR(16) COLLATE utf8mb4_nopad_bin NOT NULL
        CHECK (category IN ('FACT', 'INTEREST', 'GOAL', 'EXPERIENCE', 'PREFERENCE')),
    `key` VARCHAR(255) COLLATE utf8mb4_nopad_bin NOT NULL,
    value MEDIUMTEXT COLLATE utf8mb4_nopad_bin NOT NULL CHECK (CHAR_LENGTH(value) <= 1000000),
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY memories_user_category_key (user_id, category, `key`),
    KEY memories_user_key (user_id, `key`),
    KEY memories_user_created (user_id, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS profiles (
    user_id VARCHAR(191) COLLATE utf8mb4_nopad_bin NOT NULL PRIMARY KEY CHECK (user_id <> ''),
    profile MEDIUMTEXT COLLATE utf8mb4_nopad_bin NOT NULL,
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS onboarding (
    user_id VARCHAR(191) COLLATE utf8mb4_nopad_bin NOT NULL PRIMARY KEY CHECK (user_id <> ''),
    data LONGTEXT COLLATE utf8mb4_nopad_bin NOT NULL CHECK (JSON_VALID(data)),
    completed BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;
