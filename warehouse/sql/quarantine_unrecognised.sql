-- A file no parser recognised: keep all of its records, so that nothing is lost.
INSERT INTO quarantine (source_file, file_hash, source_line, provider, reason, raw, quarantined_at)
SELECT
    $source_file, $file_hash, source_line, NULL,
    coalesce(problem, 'no provider recognised this file; name one with --provider'),
    record, $at
FROM records
