"""Curation: object storage in, curated Parquet and a report that accounts for every row out."""
