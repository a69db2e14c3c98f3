"""What the scripts do: each command is a module with ``main(argv)``; ``scripts/`` holds few-line shims over them."""
