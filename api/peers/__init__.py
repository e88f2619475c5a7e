"""The peer documents served as they are written, as views of fleetpipe's own runs, each
under the document's own paths and in its own error shape (FastAPI's `{"detail": ...}`), so
the native envelope elsewhere is untouched."""
