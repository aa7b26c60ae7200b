module github.com/tokenguard/tokenguard/scripts/modproxy

go 1.25.0
