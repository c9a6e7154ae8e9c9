CREATE TABLE IF NOT EXISTS deliveries (
    edition TEXT NOT NULL,
    post TEXT NOT NULL,
    channel TEXT NOT NULL,
    item TEXT NOT NULL,
    batch TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    provider_id TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at DOUBLE PRECISION NOT NULL,
    failure TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (edition, channel, item)
);
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS failure TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS deliveries_by_post ON deliveries (post, edition);
CREATE TABLE IF NOT EXISTS locks (
    post TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS batches (
    edition TEXT NOT NULL,
    channel TEXT NOT NULL,
    number INTEGER NOT NULL,
    first_id BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'claimed', 'done')),
    owner TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    pid INTEGER NOT NULL DEFAULT 0,
    heartbeat TIMESTAMPTZ,
    PRIMARY KEY (edition, channel, number)
);
CREATE TABLE IF NOT EXISTS actions (
    edition TEXT NOT NULL,
    post TEXT NOT NULL,
    channel TEXT NOT NULL,
    item TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('skip', 'proof', 'edit', 'retract')),
    target TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    error TEXT NOT NULL DEFAULT '',
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (edition, channel, item, kind, target)
);
CREATE INDEX IF NOT EXISTS actions_by_post ON actions (post, kind);
INSERT INTO deliveries (edition, post, channel, item, batch, state, provider_id, url, extra, error, attempts, updated_at, failure) VALUES ('ed1', 'post', 'smtp', 'c@example.com', 'k1', 'pending', '', '', '{}', '', 1, 1796174092.0161636, '');
INSERT INTO deliveries (edition, post, channel, item, batch, state, provider_id, url, extra, error, attempts, updated_at, failure) VALUES ('ed1', 'post', 'smtp', 'a@example.com', 'k1', 'sent', 'id-a', '', '{}', '', 1, 1796174092.0226152, '');
INSERT INTO deliveries (edition, post, channel, item, batch, state, provider_id, url, extra, error, attempts, updated_at, failure) VALUES ('ed1', 'post', 'smtp', 'b@example.com', 'k1', 'failed', '', '', '{}', '550 no such user', 1, 1796174092.0237496, 'permanent');
INSERT INTO deliveries (edition, post, channel, item, batch, state, provider_id, url, extra, error, attempts, updated_at, failure) VALUES ('ed1', 'post', 'x', 'x#1', 'kx', 'sent', '111', 'https://x.com/i/web/status/111', '{"of": 1}', '', 1, 1796174092.0248425, '');
INSERT INTO actions (edition, post, channel, item, kind, target, state, error, updated_at) VALUES ('ed1', 'post', '', 'bluesky', 'skip', '', 'done', '', 1796174092.0253437);
INSERT INTO batches (edition, channel, number, first_id, last_id, state, owner, host, pid, heartbeat) VALUES ('ed1', 'sendgrid', 0, 1, 6, 'claimed', 'vm:29602:1796174091981278112', 'vm', 29602, '2026-12-02 01:14:52.029636+00:00'::timestamptz);
INSERT INTO batches (edition, channel, number, first_id, last_id, state, owner, host, pid, heartbeat) VALUES ('ed1', 'sendgrid', 1, 7, 9, 'open', '', '', 0, NULL);
