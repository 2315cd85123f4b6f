"""The ingest service: lands CSV, SQL, REST and streamed events into the governed Parquet lake."""
