"""Language Packs: manifests, the local store of installed packs, archives, signing and trust."""
