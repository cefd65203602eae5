-- Keep every staged record that could not become an event, with why.
INSERT INTO quarantine (source_file, file_hash, source_line, provider, reason, raw, quarantined_at)
SELECT DISTINCT ON (source_line)
    $source_file, $file_hash, source_line, $provider, problem, payload, $ingested_at
FROM staged
WHERE problem IS NOT NULL
ORDER BY source_line
