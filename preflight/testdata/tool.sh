#!/bin/sh
exec echo tool
