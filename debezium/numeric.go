package debezium

import (
	"math/big"

	"github.com/jackc/pgx/v5/pgtype"
)

// decimalFromBytes reads Connect's Decimal: the unscaled value as big-endian
// two's complement bytes. An empty value is zero (Debezium sends one for
// 0.00 in some versions).
func decimalFromBytes(b []byte, scale int32) pgtype.Numeric {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		// Negative: subtract 2^(8*len) to undo the two's complement.
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return pgtype.Numeric{Int: n, Exp: -scale, Valid: true}
}

// variableDecimal reads io.debezium.data.VariableScaleDecimal, {scale,
// value}, exactly: never through a float.
func variableDecimal(s *scanner) (any, error) {
	if err := s.objectStart(); err != nil {
		return nil, mismatch("want a VariableScaleDecimal struct")
	}
	var scale int64
	var unscaled []byte
	var haveScale, haveValue bool
	for first := true; ; first = false {
		key, _, ok, err := s.nextKey(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "scale":
			scale, err = s.int(32)
			haveScale = true
		case "value":
			unscaled, err = base64Value(s)
			haveValue = true
		default:
			err = mismatch("unexpected field in VariableScaleDecimal")
		}
		if err != nil {
			return nil, at(string(key), err)
		}
	}
	if !haveScale || !haveValue {
		return nil, mismatch("VariableScaleDecimal needs scale and value")
	}
	return decimalFromBytes(unscaled, int32(scale)), nil
}
