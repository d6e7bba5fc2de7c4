"""``python -m remora_lsp`` runs the ``remora`` command line."""

from remora_lsp.cli import main

if __name__ == "__main__":
    main()
