"""Operations: the `faces` CLI, running the whole stack, status, visualize."""
