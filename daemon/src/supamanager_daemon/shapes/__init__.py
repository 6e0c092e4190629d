"""The typed request and response shapes (pydantic v2), one module per Management API tag.

Each model is defined once and used three ways: to validate a request, to build (and check) the
answer, and to write /openapi.json. Models named like the official document's schemas
(`V1ProjectResponse`, ...) have its shape; models of ours say so in their docstring.
"""
