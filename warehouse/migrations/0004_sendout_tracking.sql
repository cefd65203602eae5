-- Open and click tracking is chosen per send-out (our SMTP sender adds it; providers track
-- on their own): on by default for marketing email, which is what earlier send-outs had.
ALTER TABLE sendouts ADD COLUMN is_tracked BOOLEAN NOT NULL DEFAULT false;
UPDATE sendouts SET is_tracked = communication_type = 'marketing'
    AND list_contains(channels, 'email');
