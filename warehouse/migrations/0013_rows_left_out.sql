-- The people given for a send-out who could not be sent to (a CSV's rows, typed addresses),
-- each with why: the send-out's page lists them for as long as the send-out is kept.
CREATE TABLE sendout_left_out (
    sendout_id  VARCHAR NOT NULL,
    position    INTEGER NOT NULL,  -- the order they are listed in, from 1
    row_number  INTEGER NOT NULL,  -- the CSV line it starts on (the header is 1), or the typed address's place from 1
    is_typed    BOOLEAN NOT NULL,  -- a typed address, not a line of the file
    reason      VARCHAR NOT NULL,
    PRIMARY KEY (sendout_id, position)
);
