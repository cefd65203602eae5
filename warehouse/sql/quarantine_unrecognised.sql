-- Files no parser recognised: keep all of their records, so that nothing is lost.
-- A bundle numbers its i-th file's lines from (i - 1) * $span; $files and $hashes name them.
INSERT INTO quarantine (source_file, file_hash, source_line, provider, reason, raw, quarantined_at)
SELECT
    $files[source_line // $span + 1], $hashes[source_line // $span + 1], source_line % $span,
    NULL, coalesce(problem, 'no provider recognised this file; name one with --provider'),
    record, $at
FROM records
