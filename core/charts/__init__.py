"""Pure Plotly figure builders: results in, `go.Figure` out. No streamlit, no I/O."""
