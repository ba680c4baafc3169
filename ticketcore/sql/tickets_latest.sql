-- The latest version of each ticket across all published files. Portable SQL: the same text defines the
-- Athena view (CDK) and the DuckDB view of `ticketflow query`; `tickets` is the published table.
SELECT *
FROM (
    SELECT
        t.*,
        row_number() OVER (
            PARTITION BY ticket_id
            ORDER BY updated_at DESC NULLS LAST, created_at DESC, _ingested_at DESC, _source_key DESC
        ) AS _version_rank
    FROM tickets t
) ranked
WHERE _version_rank = 1
