module coverage

go 1.19
