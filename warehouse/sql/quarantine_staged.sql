-- Keep every staged record that could not become an event, with why (one row per record: a
-- record of many recipients may have a problem on each), once.
INSERT INTO quarantine (source_file, file_hash, source_line, provider, reason, raw, quarantined_at)
SELECT DISTINCT ON (source_file, source_line)
    source_file, file_hash, source_line, $provider, problem, payload, $ingested_at
FROM staged
WHERE problem IS NOT NULL
  -- a file read again after a crash between two of its parts: its lines are kept once
  AND NOT EXISTS (
      SELECT 1 FROM quarantine AS kept
      WHERE kept.file_hash = staged.file_hash AND kept.source_line = staged.source_line
  )
ORDER BY source_file, source_line
