-- The Mimir-like schema and generated data seeded into the sandbox's primary (the standby gets it by
-- replication). Deterministic: the same :articles/:users/:activity scale gives the same rows, with
-- timestamps relative to the seeding time so "last 24 hours" and "last hour" queries find rows.
\set ON_ERROR_STOP on
BEGIN;
CREATE TABLE articles (
  id           bigserial PRIMARY KEY,
  title        text        NOT NULL,
  url          text        NOT NULL UNIQUE,
  source       text        NOT NULL,
  content      text        NOT NULL,
  published_at timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE users (
  id                      bigserial PRIMARY KEY,
  email                   text        NOT NULL UNIQUE,
  password_hash           text        NOT NULL,
  password_reset_required boolean     NOT NULL DEFAULT false,
  last_login_at           timestamptz,
  created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE activity_log (
  id         bigserial PRIMARY KEY,
  user_id    bigint      REFERENCES users (id),
  action     text        NOT NULL,
  status     text        NOT NULL,
  ip_address inet,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activity_log_action_status_created_at ON activity_log (action, status, created_at);
CREATE INDEX users_last_login_at ON users (last_login_at);

INSERT INTO articles (title, url, source, content, published_at)
SELECT 'Article ' || i || ': ' || md5(i::text),
       'https://news.example.com/' || i,
       (ARRAY['reuters', 'ap', 'bbc', 'guardian', 'nyt'])[1 + i % 5],
       repeat(md5(i::text) || ' ', 8),
       now() - (i % 10000) * interval '1 minute'
FROM generate_series(1, :articles) AS i;

INSERT INTO users (email, password_hash, last_login_at)
SELECT 'user' || i || '@example.com',
       'scrypt$' || md5('pw' || i),
       CASE WHEN i % 10 = 0 THEN NULL ELSE now() - (i % 72) * interval '1 hour' END
FROM generate_series(1, :users) AS i;

INSERT INTO activity_log (user_id, action, status, ip_address, created_at)
SELECT 1 + i % :users,
       (ARRAY['login', 'login', 'view', 'search', 'logout'])[1 + i % 5],
       CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'ok' END,
       ('10.' || (i % 200) || '.' || (i % 250) || '.' || (1 + i % 253))::inet,
       now() - (i % 2880) * interval '1 minute'
FROM generate_series(1, :activity) AS i;
COMMIT;
ANALYZE;
