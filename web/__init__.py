"""The review team's web app (`livingmeta web`): server-rendered pages on the warehouse operations."""
