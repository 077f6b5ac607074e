"""`make bench`: measurements as ratios against a baseline run side by side, on loopback."""
