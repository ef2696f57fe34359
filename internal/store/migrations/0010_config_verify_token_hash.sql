-- A keyed hash (secrets.Box.Lookup) of each config's webhook verify token, so
-- Meta's GET handshake can find the config without the token stored in clear.
ALTER TABLE whatsapp_configs ADD COLUMN webhook_verify_token_hash TEXT;
CREATE INDEX whatsapp_configs_verify_token_hash ON whatsapp_configs(webhook_verify_token_hash);
