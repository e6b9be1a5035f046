"""rosbag2 episode recorder, bag bridge uploader to the fleet store, and their nodes."""
