"""The pack registry: an HTTP service (``server``) over a storage backend (``storage``), its
rules (``service``) and the client that resolves, downloads and installs packs (``client``)."""
