BEGIN TRANSACTION;
CREATE TABLE actions (
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
INSERT INTO "actions" VALUES('ed1','post','','bluesky','skip','','done','',1.79617408989549875259e+09);
CREATE TABLE deliveries (
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
    updated_at REAL NOT NULL,
    failure TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (edition, channel, item)
);
INSERT INTO "deliveries" VALUES('ed1','post','smtp','a@example.com','k1','sent','id-a','','{}','',1,1.79617408989528131489e+09,'');
INSERT INTO "deliveries" VALUES('ed1','post','smtp','b@example.com','k1','failed','','','{}','550 no such user',1,1.7961740898953392505e+09,'permanent');
INSERT INTO "deliveries" VALUES('ed1','post','smtp','c@example.com','k1','pending','','','{}','',1,1796174089.89508,'');
INSERT INTO "deliveries" VALUES('ed1','post','x','x#1','kx','sent','111','https://x.com/i/web/status/111','{"of": 1}','',1,1.79617408989543247219e+09,'');
CREATE TABLE locks (
    post TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE INDEX deliveries_by_post ON deliveries (post, edition);
CREATE INDEX actions_by_post ON actions (post, kind);
COMMIT;
