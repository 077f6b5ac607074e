"""People in the console: users and their administrator role, two-factor sign-in, passwords."""
