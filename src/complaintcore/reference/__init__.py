"""Reference data: the institution tree, the holiday calendars, the files they are read from."""
