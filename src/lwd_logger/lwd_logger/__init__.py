"""rosbag2 episode recorder, fleet store, bag bridge uploader, catalog and their nodes."""
