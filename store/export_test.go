package store

import "context"

// MigrateTo applies the missing migrations up to version upTo (tests of a
// migration start from the schema before it).
func (s *Store) MigrateTo(ctx context.Context, upTo int) error { return s.migrateTo(ctx, upTo) }
