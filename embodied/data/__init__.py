"""Datasets: LeRobot v3.0 format reading and writing, statistics, mixing."""
