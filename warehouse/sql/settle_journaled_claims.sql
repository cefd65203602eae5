-- The claims of runs whose journals were read ($runs: they ended), settled by what the journals
-- say, so that the journals can go and no later run needs them. A message noted as going out
-- ($started) without an outcome may have reached its recipient: flagged as maybe sent twice. The
-- others never left (each message is noted before it goes out): as though never claimed.
-- Every claim is given back for the next claim to take.
UPDATE messages SET
    is_possible_duplicate = is_possible_duplicate OR list_contains($started::VARCHAR[], message_id),
    attempts = attempts - CASE WHEN list_contains($started::VARCHAR[], message_id) THEN 0 ELSE 1 END,
    claimed_by = NULL,
    claimed_at = NULL
WHERE sendout_id = $sendout_id
  AND outcome IS NULL
  AND list_contains($runs::VARCHAR[], claimed_by);
