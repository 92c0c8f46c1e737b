//! OAuth and HTTP: talking to providers. (Issue 3.)
