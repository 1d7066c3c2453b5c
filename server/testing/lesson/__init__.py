"""The lesson, declared as data: its steps and checkpoints, its words, and the README it is taught from."""
