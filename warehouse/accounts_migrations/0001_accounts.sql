-- accounts 0001: people who sign in to the web app, and their role on each review.
--
-- Kept in a file of its own beside the warehouse (`<warehouse>.accounts.duckdb`), never in the warehouse:
-- the warehouse is copied whole into the published snapshot that dashboards read, and password hashes must
-- never reach it.

CREATE TABLE app_users (
    username      VARCHAR PRIMARY KEY,     -- sign-in name: lower case letters, digits, . _ -
    display_name  VARCHAR NOT NULL,        -- how decisions and pages name the person
    password_hash VARCHAR NOT NULL,        -- argon2id (argon2-cffi's PHC string); never sent to a page
    created_at    TIMESTAMPTZ NOT NULL,
    password_set_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE review_members (
    review_id  VARCHAR NOT NULL,
    username   VARCHAR NOT NULL,
    role       VARCHAR NOT NULL CHECK (role IN ('lead', 'reviewer')),
    added_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (review_id, username)
);
