-- Whether an Unsubscribes entry of `scope` keeps a send-out of `communication_type` from its
-- address (DESIGN §6): a marketing send-out skips every entry, any other only the entries whose
-- scope is 'all'. The rule's one home: dispatch (sql/blocking_unsubscribes.sql), resending to
-- non-openers (sql/non_openers.sql) and analysts' own queries use it.
CREATE MACRO entry_blocks(scope, communication_type) AS
    scope = 'all' OR communication_type = 'marketing';
