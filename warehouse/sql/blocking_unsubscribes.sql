-- The Unsubscribes entries that block any of $addresses (a claimed batch's recipients) on a
-- send-out of $communication_type (the rule: entry_blocks): one reason per channel and address
-- (of several, the first in the alphabet). Filtering by a list of constants lets DuckDB narrow
-- the list's changes to these addresses before it works out which change of each is the latest
-- (the view's window is partitioned by address), so a claim reads a batch's worth of changes,
-- not every change of a list of 400,000 (which also took more than a capped dispatch's memory).
SELECT channel, address, min(reason) AS reason
FROM unsubscribes
WHERE list_contains($addresses::VARCHAR[], address)
  AND entry_blocks(scope, $communication_type)
GROUP BY channel, address
