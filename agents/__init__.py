"""The LangGraph agent teams that research, write and verify a LinkedIn post.

`agents` may import `db`; it never imports `graph`.
"""
