"""RAW I/O and ISP math in numpy: no TensorFlow here, so the LiteRT runtime can use it."""
