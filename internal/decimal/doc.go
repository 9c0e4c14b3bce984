// Package decimal reads decimal text ("-12.34", "1E+5", "NaN", "Infinity")
// into a pgtype.Numeric exactly, never through a float. The decoder uses it
// for Debezium's decimal.handling.mode=string values and the money codec in
// sink/pgcopy for the text it is given; it is a leaf so that both can.
package decimal
