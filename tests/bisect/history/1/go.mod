module example.com/sessiond

go 1.21
