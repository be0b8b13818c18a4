"""The compiled shortcuts (csrc/) and their one binding point; Python references live beside their users."""
