"""The peer documents served as they are written, each a sub-application with its own error
shape (FastAPI's `{"detail": ...}`), so the native envelope elsewhere is untouched."""
