package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tollguard/tollguard"
)

// Voicemail reloads the pins audit still owes (migration 0008).

var _ tollguard.VoicemailReloadStore = (*DB)(nil)

// MarkVoicemailReload records, before any PIN of source is written,
// that module needs a reload and which mailboxes' PINs are about to
// change (added to those a marker already lists). It returns the
// marker's new sequence number.
func (s *DB) MarkVoicemailReload(ctx context.Context, source, module string, pins []tollguard.PendingPIN, at time.Time) (int64, error) {
	var seq int64
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var old []tollguard.PendingPIN
		var pj string
		err := tx.QueryRowContext(ctx, `SELECT pins FROM voicemail_reloads WHERE source = ?`, source).Scan(&pj)
		switch {
		case err == nil:
			if err := json.Unmarshal([]byte(pj), &old); err != nil {
				return fmt.Errorf("voicemail reload of %s: stored pins: %w", source, err)
			}
		case err != sql.ErrNoRows:
			return err
		}
		for _, p := range pins {
			if !slices.ContainsFunc(old, func(o tollguard.PendingPIN) bool { return o.Mailbox == p.Mailbox }) {
				old = append(old, p)
			}
		}
		b, err := json.Marshal(nonNil(old))
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO voicemail_reloads(source, module, seq, marked_at, pins) VALUES (?, ?, 1, ?, ?)
			ON CONFLICT(source) DO UPDATE SET module = excluded.module, seq = seq + 1, marked_at = excluded.marked_at, pins = excluded.pins
			RETURNING seq`, source, module, at.Unix(), string(b)).Scan(&seq); err != nil {
			return fmt.Errorf("mark voicemail reload of %s: %w", source, err)
		}
		return nil
	})
	return seq, err
}

func nonNil(p []tollguard.PendingPIN) []tollguard.PendingPIN {
	if p == nil {
		return []tollguard.PendingPIN{}
	}
	return p
}

// VoicemailReloads lists the pending markers, oldest first.
func (s *DB) VoicemailReloads(ctx context.Context) ([]tollguard.VoicemailReload, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT source, module, seq, marked_at, pins FROM voicemail_reloads ORDER BY marked_at, source`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tollguard.VoicemailReload
	for rows.Next() {
		var v tollguard.VoicemailReload
		var at int64
		var pj string
		if err := rows.Scan(&v.Source, &v.Module, &v.Seq, &at, &pj); err != nil {
			return nil, err
		}
		v.MarkedAt = fromUnix(at)
		if err := json.Unmarshal([]byte(pj), &v.PINs); err != nil {
			return nil, fmt.Errorf("voicemail reload of %s: stored pins: %w", v.Source, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// VoicemailPINsReported drops mailboxes (Mailbox.Key()) from source's
// marker: a run reported what it did to their PINs.
func (s *DB) VoicemailPINsReported(ctx context.Context, source string, mailboxes []string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var pj string
		err := tx.QueryRowContext(ctx, `SELECT pins FROM voicemail_reloads WHERE source = ?`, source).Scan(&pj)
		if err == sql.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		var pins []tollguard.PendingPIN
		if err := json.Unmarshal([]byte(pj), &pins); err != nil {
			return fmt.Errorf("voicemail reload of %s: stored pins: %w", source, err)
		}
		pins = slices.DeleteFunc(pins, func(p tollguard.PendingPIN) bool { return slices.Contains(mailboxes, p.Mailbox) })
		b, err := json.Marshal(nonNil(pins))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE voicemail_reloads SET pins = ? WHERE source = ?`, string(b), source)
		return err
	})
}

// FinishVoicemailReload removes source's marker after its module was
// reloaded, unless another run marked it again after seq (its PINs
// may have been written after the reload).
func (s *DB) FinishVoicemailReload(ctx context.Context, source string, seq int64) error {
	_, err := s.exec(ctx, `DELETE FROM voicemail_reloads WHERE source = ? AND seq = ?`, source, seq)
	return err
}
