package main

import (
	"context"
	"errors"
	"io"
)

func users(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("users: not available yet")
}

func sandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("sandbox: not available yet")
}
