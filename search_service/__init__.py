"""search_service: self-hosted Chinese full-text site search (jieba + Whoosh + Flask)."""

__version__ = "0.1.0"
