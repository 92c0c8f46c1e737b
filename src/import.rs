//! The import use case: bytes → parse → normalize → store.
