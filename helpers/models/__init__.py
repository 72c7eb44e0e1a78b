"""The networks only: no training loops, no data handling."""
