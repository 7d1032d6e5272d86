package browsertest_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wsrpc/wsrpc/internal/browsertest"
)

func TestNew(t *testing.T) {
	ctx := browsertest.New(t)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[int](`6 * 7`))
	if err != nil {
		t.Fatal(err)
	}
	if got != 42 {
		t.Fatalf("6 * 7 = %d in the browser", got)
	}
	ua, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("user agent: %s", ua)
}
